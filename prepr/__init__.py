"""prepr"""
