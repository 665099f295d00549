"""`torchvision.transforms.functional.resize`: nerfstudio calls it only for viewer thumbnails."""

from torchvision import unavailable

resize = unavailable("transforms.functional.resize")
