"""`torchvision.utils.save_image`: imported by nerfstudio's pipeline, called only when writing eval images."""

from torchvision import unavailable

save_image = unavailable("utils.save_image")
