"""Box operations torchmetrics' detection metrics import; nothing in our path computes detection metrics."""

from torchvision import unavailable

box_area = unavailable("ops.box_area")
box_convert = unavailable("ops.box_convert")
box_iou = unavailable("ops.box_iou")
complete_box_iou = unavailable("ops.complete_box_iou")
distance_box_iou = unavailable("ops.distance_box_iou")
generalized_box_iou = unavailable("ops.generalized_box_iou")
