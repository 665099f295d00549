"""Model builders torchmetrics imports when torchvision looks installed (ARNIQA, DISTS, LPIPS backbones);
nerfacto's LPIPS is replaced before it would build one (scenes.nerfstudio_runtime)."""

from torchvision import unavailable

resnet50 = unavailable("models.resnet50")
vgg16 = unavailable("models.vgg16")
alexnet = unavailable("models.alexnet")
squeezenet1_1 = unavailable("models.squeezenet1_1")
VGG16_Weights = AlexNet_Weights = SqueezeNet1_1_Weights = None
