"""Developer tools that are not part of the shipped package (not in the wheel, not in the image)."""
