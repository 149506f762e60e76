"""hubpress.build"""
