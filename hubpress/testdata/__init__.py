"""hubpress.testdata"""
