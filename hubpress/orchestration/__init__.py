"""hubpress.orchestration"""
