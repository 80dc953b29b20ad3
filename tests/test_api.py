"""The public surface: removing or renaming a public name, or changing a layer's argument order, must fail a test."""

import importlib
import inspect

import pytest
import torch
from torch import nn

import antialias
import antialias.layers

LAYERS = [
    "BlurPool1d",
    "BlurPool2d",
    "BlurPool3d",
    "MaxBlurPool1d",
    "MaxBlurPool2d",
    "MaxBlurPool3d",
    "BlurConv1d",
    "BlurConv2d",
    "BlurConv3d",
    "BlurUpsample1d",
    "BlurUpsample2d",
    "BlurUpsample3d",
]
FUNCTIONS = [
    "blur_pool1d",
    "blur_pool2d",
    "blur_pool3d",
    "max_blur_pool1d",
    "max_blur_pool2d",
    "max_blur_pool3d",
    "blur_upsample1d",
    "blur_upsample2d",
    "blur_upsample3d",
    "create_downsample",
    "register_downsample",
    "list_downsample_methods",
]
POLYPHASE = [
    "ApsDown1d",
    "ApsDown2d",
    "ApsDown3d",
    "LpsDown1d",
    "LpsDown2d",
    "LpsDown3d",
    "LpsScorer",
    "PolyphaseUp1d",
    "PolyphaseUp2d",
    "PolyphaseUp3d",
    "aps_down1d",
    "aps_down2d",
    "aps_down3d",
    "lps_down1d",
    "lps_down2d",
    "lps_down3d",
    "polyphase_up1d",
    "polyphase_up2d",
    "polyphase_up3d",
    "link_residual_phases",
    "set_lps_temperature",
]
ANCHOR = [
    "AnchoredConv1d",
    "AnchoredConv2d",
    "PolyphaseAnchor1d",
    "PolyphaseAnchor2d",
    "TokenAnchor1d",
    "TokenAnchor2d",
    "polyphase_anchor1d",
    "polyphase_anchor2d",
    "token_anchor1d",
    "token_anchor2d",
]

# Every public module and the names it must keep (a subset check: new names may be added freely).
PUBLIC = {
    "antialias": LAYERS
    + [
        "__version__",
        "filters",
        "layers",
        "get_taps",
        "get_kernel",
        "ConversionReport",
        "convert",
        "convert_with_report",
        "get_model",
        "list_models",
    ],
    "antialias.layers": LAYERS
    + FUNCTIONS
    + POLYPHASE
    + ANCHOR
    + [
        "PAD_MODES",
        "TrimToStride",
        "check_backend",
        "get_backend",
        "set_backend",
    ],
    "antialias.conversion": [
        "ConversionReport",
        "ConvertedLayer",
        "ModuleEdit",
        "SkippedLayer",
        "check_circular_invariance",
        "convert",
        "convert_with_report",
    ],
    "antialias.filters": ["FAMILIES", "FilterSpec", "filter_name", "get_kernel", "get_taps"],
    "antialias.models": [
        "build_model",
        "import_object",
        "load_init_weights",
        "weights_num_classes",
        "get_model",
        "get_model_weights",
        "get_weight",
        "list_models",
        "load_weights",
        "register_model",
        "remap_reference_state_dict",
        "Weights",
        "WeightsEnum",
        "CheckpointError",
        "WeightsDownloadError",
        "LICENSE",
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
        "vgg11",
        "vgg11_bn",
        "vgg13",
        "vgg13_bn",
        "vgg16",
        "vgg16_bn",
        "vgg19",
        "vgg19_bn",
        "wide_resnet50_2",
        "wide_resnet101_2",
        "AlexNet_Weights",
        "DenseNet121_Weights",
        "DenseNet161_Weights",
        "DenseNet169_Weights",
        "DenseNet201_Weights",
        "MobileNet_V2_Weights",
        "ResNet18_Weights",
        "ResNet34_Weights",
        "ResNet50_Weights",
        "ResNet101_Weights",
        "ResNet152_Weights",
        "ResNeXt50_32X4D_Weights",
        "ResNeXt101_32X8D_Weights",
        "VGG11_Weights",
        "VGG11_BN_Weights",
        "VGG13_Weights",
        "VGG13_BN_Weights",
        "VGG16_Weights",
        "VGG16_BN_Weights",
        "VGG19_Weights",
        "VGG19_BN_Weights",
        "Wide_ResNet50_2_Weights",
        "Wide_ResNet101_2_Weights",
    ],
    "antialias.metrics": [
        "accuracy",
        "evaluate_accuracy",
        "circular_consistency",
        "crop_consistency",
        "diagonal_shift",
        "fractional_consistency",
        "fractional_shift",
        "worst_case_accuracy",
        "feature_equivariance",
        "corruption_errors",
        "flip_probability",
        "top5_distance",
        "imagenet_c_errors",
        "imagenet_c_scores",
        "imagenet_p_rates",
        "imagenet_p_scores",
        "ALEXNET_C_ERRORS",
        "IMAGENET_C_CORRUPTIONS",
        "IMAGENET_P_PERTURBATIONS",
        "AccuracyResult",
        "ConsistencyResult",
        "DiagonalResult",
        "EquivarianceResult",
        "ImageNetCResult",
        "ImageNetPResult",
        "WorstCaseResult",
    ],
    "antialias.files": [
        "OUTPUT_MARKER",
        "check_output_path",
        "is_own_output",
        "record_outputs",
        "write_json",
    ],
    "antialias.train": [
        "train",
        "TrainConfig",
        "TrainResult",
        "RECIPES",
        "Recipe",
        "recipe_for",
        "build_model",
        "load_checkpoint",
        "save_checkpoint",
        "load_init_weights",
        "train_transform",
        "lps_temperature",
        "train_one_epoch",
        "evaluate",
        "EpochStats",
        "ConfigError",
    ],
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_kept(module_name):
    module = importlib.import_module(module_name)
    missing = [name for name in PUBLIC[module_name] if name not in module.__all__]
    assert not missing, f"{module_name}.__all__ lost {missing}"


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_names_exist_and_are_public(module_name):
    module = importlib.import_module(module_name)
    assert len(set(module.__all__)) == len(module.__all__), f"{module_name}.__all__ has duplicates"
    for name in module.__all__:
        assert hasattr(module, name), f"{module_name}.{name} is in __all__ but missing"
        assert name == "__version__" or not name.startswith("_"), (
            f"{module_name}.__all__ exports a private name {name}"
        )


def test_layers_surface():
    for name in LAYERS + FUNCTIONS + POLYPHASE + ANCHOR:
        assert callable(getattr(antialias.layers, name))


def test_schedule_lives_in_train():
    """A training schedule is not a layer: lps_temperature lives in antialias.train."""
    assert not hasattr(antialias.layers, "lps_temperature")
    with pytest.raises(AttributeError, match="has no attribute 'lps_temperature'"):
        antialias.layers.lps_temperature  # noqa: B018
    from antialias.train import lps_temperature

    assert lps_temperature(10) == 0.85


# ------------------------------------------------------------------------------------------------
# One signature order for the layers: channels first, options keyword-only


def _params(cls):
    return list(inspect.signature(cls.__init__).parameters.values())[1:]  # without self


CHANNELS_FIRST = {
    "BlurPool": ["stride", "filter_size", "pad_mode", "pad_off"],
    "BlurUpsample": ["scale_factor", "filter_size", "pad_mode"],
    "ApsDown": ["stride", "filter_size", "pad_mode", "norm", "return_phase"],
    "LpsDown": [
        "stride",
        "filter_size",
        "pad_mode",
        "hidden_channels",
        "tau",
        "hard",
        "return_phase",
        "scorer",
        "device",
        "dtype",
    ],
    "PolyphaseUp": ["stride", "filter_size", "pad_mode"],
}


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", sorted(CHANNELS_FIRST))
def test_channels_first_then_keyword_only(family, ndim):
    cls = getattr(antialias.layers, f"{family}{ndim}d")
    params = _params(cls)
    assert params[0].name == "channels" and params[0].default is None
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert [p.name for p in params[1:]] == CHANNELS_FIRST[family]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    with pytest.raises(TypeError, match="positional argument"):
        cls(8, 2)  # the old positional meaning (filter or stride) is an error, not a silent change


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_max_blur_pool_takes_max_pool_arguments(ndim):
    cls = getattr(antialias.layers, f"MaxBlurPool{ndim}d")
    params = _params(cls)
    assert [p.name for p in params[:3]] == ["kernel_size", "stride", "padding"]
    torch_params = list(inspect.signature(getattr(nn, f"MaxPool{ndim}d").__init__).parameters)[1:4]
    assert torch_params == ["kernel_size", "stride", "padding"]
    assert [p.name for p in params[3:]] == ["channels", "filter_size", "pad_mode", "pad_off"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[3:])
    # nn.MaxPoolNd's defaults: stride None means kernel_size
    pool = cls(3)
    assert pool.stride == [3] * ndim and pool.kernel_size == [3] * ndim
    assert cls(3, 2, 1).stride == [2] * ndim and cls(3, 2, 1).padding == [1] * ndim
    with pytest.raises(TypeError, match="positional argument"):
        cls(2, 2, 0, 64)  # channels is keyword-only


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_blur_conv_takes_conv_arguments(ndim):
    cls = getattr(antialias.layers, f"BlurConv{ndim}d")
    params = _params(cls)
    conv_params = list(inspect.signature(getattr(nn, f"Conv{ndim}d").__init__).parameters)[1:10]
    assert [p.name for p in params[:9]] == conv_params
    assert [p.name for p in params[9:]] == ["filter_size", "pad_mode", "device", "dtype"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[9:])
    with pytest.raises(TypeError, match="positional argument"):
        cls(2, 4, 1, 2, 0, 1, 1, True, "zeros", 3)


def test_parameter_free_layers_take_no_factory_arguments():
    """device/dtype are honoured where there are parameters and not accepted where there are none."""
    for name in ("BlurPool2d", "MaxBlurPool2d", "BlurUpsample2d", "ApsDown2d", "PolyphaseUp2d"):
        cls = getattr(antialias.layers, name)
        assert "device" not in inspect.signature(cls.__init__).parameters, name
        layer = cls()
        assert list(layer.parameters()) == [] and list(layer.buffers()) == [], name
    lps = antialias.layers.LpsDown2d(4, dtype=torch.float64, device="meta")
    assert all(p.dtype == torch.float64 and p.device.type == "meta" for p in lps.parameters())
    conv = antialias.layers.BlurConv2d(4, 8, 3, dtype=torch.float64)
    assert conv.weight.dtype == torch.float64
    # the factory takes them for every method and places the parameters, if any
    made = antialias.layers.create_downsample("lps", 2, 4, 2, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in made.parameters())
    assert isinstance(
        antialias.layers.create_downsample("blur", 2, 4, 2, device="cpu"),
        antialias.layers.BlurPool2d,
    )


def test_polyphase_functionals_are_keyword_only_after_their_tensors():
    for name, tensors in (("aps_down2d", 1), ("lps_down2d", 2), ("polyphase_up2d", 2)):
        params = list(inspect.signature(getattr(antialias.layers, name)).parameters.values())
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[tensors:]), name
        assert [p.name for p in params[tensors : tensors + 3]] == [
            "stride",
            "filter_size",
            "pad_mode",
        ], name


def test_alternate_constructors_take_keyword_options():
    for cls, first in (
        (antialias.layers.BlurConv2d.from_conv, "conv"),
        (antialias.layers.MaxBlurPool2d.from_max_pool, "pool"),
    ):
        params = list(inspect.signature(cls).parameters.values())
        assert params[0].name == first
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    with pytest.raises(TypeError, match="positional argument"):
        antialias.layers.MaxBlurPool2d.from_max_pool(nn.MaxPool2d(2), 3)
