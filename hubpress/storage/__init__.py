"""hubpress.storage.files"""
