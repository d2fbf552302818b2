"""Developer tools of the EvoSearch pack (training the demo model); not imported by ComfyUI."""
