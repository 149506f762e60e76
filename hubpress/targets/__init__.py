"""hubpress.targets.base"""
