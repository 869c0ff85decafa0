"""ngspice reference cases for the crossbar wire model."""
