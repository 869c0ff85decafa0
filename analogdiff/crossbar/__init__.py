"""crossbar"""
