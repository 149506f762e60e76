"""hubpress.sources"""
