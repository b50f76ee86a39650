"""Pure-Python pieces shared by the FaceSearch services (no heavy imports)."""
