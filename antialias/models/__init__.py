"""The anti-aliased model zoo: the reference's 23 architectures with torchvision's parameter names.

Each builder (``resnet50``, ``vgg16_bn``, ``densenet121``, ``mobilenet_v2``, ``alexnet`` ...) builds
torchvision's model and swaps its subsampling modules for anti-aliased ones (Zhang, ICML 2019), with
the reference's placement. Because no parameter is renamed:

- torchvision's baseline weights load strictly (``weights="TORCHVISION_IMAGENET1K_V1"``, or
  ``model.load_state_dict(torchvision_model.state_dict())``): the starting point of fine-tuning;
- the reference's official checkpoints (``weights="DEFAULT"``, ``"LPF2"`` ... or a file) load through
  one documented key remapping, :func:`remap_reference_state_dict`.

The reference's weights are CC BY-NC-SA 4.0: **non-commercial use only**. They download into
torch.hub's cache with their SHA-256 prefix checked; set ``ANTIALIAS_WEIGHTS_MIRROR`` to a base URL to
download them from a mirror, or put the file in the cache folder by hand (the error says where).

Checkpoints of any model are read the zoo's way by :func:`read_state_dict` (safely: no code runs; in
any of the usual wrappings), compared with :func:`state_dict_mismatch`, and fitted to another class
count with :func:`replace_classifier_weights`.

Example:
    >>> from antialias.models import get_model, list_models
    >>> list_models("resnet5*")
    ['resnet50']
    >>> model = get_model("resnet18", filter_size=3, num_classes=10)
    >>> model.maxpool
    MaxBlurPool2d(kernel_size=2, padding=0, channels=64, filter_size=3, stride=2, pad_mode='reflect')
"""

from antialias.models._head import MODEL_META_KEY as MODEL_META_KEY
from antialias.models._head import classifier_name as classifier_name
from antialias.models._head import replace_classifier_weights as replace_classifier_weights
from antialias.models._head import state_dict_num_classes as state_dict_num_classes
from antialias.models._load import CheckpointError as CheckpointError
from antialias.models._load import WeightsDownloadError as WeightsDownloadError
from antialias.models._load import extract_state_dict as extract_state_dict
from antialias.models._load import load_weights as load_weights
from antialias.models._load import read_model_meta as read_model_meta
from antialias.models._load import read_state_dict as read_state_dict
from antialias.models._load import read_torchvision_state_dict as read_torchvision_state_dict
from antialias.models._load import state_dict_mismatch as state_dict_mismatch
from antialias.models._load import (
    torchvision_weights_through_loader as torchvision_weights_through_loader,
)
from antialias.models._load import weights_num_classes as weights_num_classes
from antialias.models._reference import remap_reference_state_dict as remap_reference_state_dict
from antialias.models._registry import get_model as get_model
from antialias.models._registry import list_models as list_models
from antialias.models._registry import register_model as register_model
from antialias.models._resolve import build_model as build_model
from antialias.models._resolve import import_object as import_object
from antialias.models._resolve import load_init_weights as load_init_weights
from antialias.models._weights import LICENSE as LICENSE
from antialias.models._weights import AlexNet_Weights as AlexNet_Weights
from antialias.models._weights import DenseNet121_Weights as DenseNet121_Weights
from antialias.models._weights import DenseNet161_Weights as DenseNet161_Weights
from antialias.models._weights import DenseNet169_Weights as DenseNet169_Weights
from antialias.models._weights import DenseNet201_Weights as DenseNet201_Weights
from antialias.models._weights import MobileNet_V2_Weights as MobileNet_V2_Weights
from antialias.models._weights import ResNet18_Weights as ResNet18_Weights
from antialias.models._weights import ResNet34_Weights as ResNet34_Weights
from antialias.models._weights import ResNet50_Weights as ResNet50_Weights
from antialias.models._weights import ResNet101_Weights as ResNet101_Weights
from antialias.models._weights import ResNet152_Weights as ResNet152_Weights
from antialias.models._weights import ResNeXt50_32X4D_Weights as ResNeXt50_32X4D_Weights
from antialias.models._weights import ResNeXt101_32X8D_Weights as ResNeXt101_32X8D_Weights
from antialias.models._weights import VGG11_BN_Weights as VGG11_BN_Weights
from antialias.models._weights import VGG11_Weights as VGG11_Weights
from antialias.models._weights import VGG13_BN_Weights as VGG13_BN_Weights
from antialias.models._weights import VGG13_Weights as VGG13_Weights
from antialias.models._weights import VGG16_BN_Weights as VGG16_BN_Weights
from antialias.models._weights import VGG16_Weights as VGG16_Weights
from antialias.models._weights import VGG19_BN_Weights as VGG19_BN_Weights
from antialias.models._weights import VGG19_Weights as VGG19_Weights
from antialias.models._weights import Weights as Weights
from antialias.models._weights import WeightsEnum as WeightsEnum
from antialias.models._weights import Wide_ResNet50_2_Weights as Wide_ResNet50_2_Weights
from antialias.models._weights import Wide_ResNet101_2_Weights as Wide_ResNet101_2_Weights
from antialias.models._weights import get_model_weights as get_model_weights
from antialias.models._weights import get_weight as get_weight
from antialias.models.alexnet import alexnet as alexnet
from antialias.models.densenet import densenet121 as densenet121
from antialias.models.densenet import densenet161 as densenet161
from antialias.models.densenet import densenet169 as densenet169
from antialias.models.densenet import densenet201 as densenet201
from antialias.models.mobilenet import mobilenet_v2 as mobilenet_v2
from antialias.models.resnet import resnet18 as resnet18
from antialias.models.resnet import resnet34 as resnet34
from antialias.models.resnet import resnet50 as resnet50
from antialias.models.resnet import resnet101 as resnet101
from antialias.models.resnet import resnet152 as resnet152
from antialias.models.resnet import resnext50_32x4d as resnext50_32x4d
from antialias.models.resnet import resnext101_32x8d as resnext101_32x8d
from antialias.models.resnet import wide_resnet50_2 as wide_resnet50_2
from antialias.models.resnet import wide_resnet101_2 as wide_resnet101_2
from antialias.models.vgg import vgg11 as vgg11
from antialias.models.vgg import vgg11_bn as vgg11_bn
from antialias.models.vgg import vgg13 as vgg13
from antialias.models.vgg import vgg13_bn as vgg13_bn
from antialias.models.vgg import vgg16 as vgg16
from antialias.models.vgg import vgg16_bn as vgg16_bn
from antialias.models.vgg import vgg19 as vgg19
from antialias.models.vgg import vgg19_bn as vgg19_bn

__all__ = [
    "LICENSE",
    "CheckpointError",
    "Weights",
    "WeightsDownloadError",
    "WeightsEnum",
    "get_model",
    "get_model_weights",
    "get_weight",
    "list_models",
    "load_weights",
    "register_model",
    "remap_reference_state_dict",
    # reading checkpoints as the zoo does (safely, in any layout) and fitting them to a model
    "MODEL_META_KEY",
    "classifier_name",
    "extract_state_dict",
    "read_model_meta",
    "build_model",
    "import_object",
    "load_init_weights",
    "weights_num_classes",
    "read_state_dict",
    "read_torchvision_state_dict",
    "replace_classifier_weights",
    "state_dict_mismatch",
    "state_dict_num_classes",
    "torchvision_weights_through_loader",
    # the weights enums, one per architecture (torchvision's names)
    "AlexNet_Weights",
    "VGG11_Weights",
    "VGG11_BN_Weights",
    "VGG13_Weights",
    "VGG13_BN_Weights",
    "VGG16_Weights",
    "VGG16_BN_Weights",
    "VGG19_Weights",
    "VGG19_BN_Weights",
    "ResNet18_Weights",
    "ResNet34_Weights",
    "ResNet50_Weights",
    "ResNet101_Weights",
    "ResNet152_Weights",
    "ResNeXt50_32X4D_Weights",
    "ResNeXt101_32X8D_Weights",
    "Wide_ResNet50_2_Weights",
    "Wide_ResNet101_2_Weights",
    "DenseNet121_Weights",
    "DenseNet161_Weights",
    "DenseNet169_Weights",
    "DenseNet201_Weights",
    "MobileNet_V2_Weights",
    # the builders
    "alexnet",
    "densenet121",
    "densenet161",
    "densenet169",
    "densenet201",
    "mobilenet_v2",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]
