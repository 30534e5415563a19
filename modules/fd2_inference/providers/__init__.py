"""One file per provider behind the inference module; `base` is the seam they share."""
