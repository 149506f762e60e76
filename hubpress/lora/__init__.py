"""hubpress.lora.weights"""
