"""The public surface: removing or renaming one of these names must fail a test."""

import antialias
import antialias.layers

LAYERS = [
    "BlurPool1d", "BlurPool2d", "BlurPool3d",
    "MaxBlurPool1d", "MaxBlurPool2d", "MaxBlurPool3d",
    "BlurConv1d", "BlurConv2d", "BlurConv3d",
    "BlurUpsample1d", "BlurUpsample2d", "BlurUpsample3d",
]
FUNCTIONS = [
    "blur_pool1d", "blur_pool2d", "blur_pool3d",
    "max_blur_pool1d", "max_blur_pool2d", "max_blur_pool3d",
    "blur_upsample1d", "blur_upsample2d", "blur_upsample3d",
    "create_downsample", "register_downsample", "list_downsample_methods",
]


def test_layers_surface():
    for name in LAYERS + FUNCTIONS:
        assert name in antialias.layers.__all__, name
        assert callable(getattr(antialias.layers, name))


def test_top_level_surface():
    for name in LAYERS + ["get_taps", "get_kernel", "__version__"]:
        assert name in antialias.__all__, name
        assert hasattr(antialias, name)


def test_all_names_exist():
    for module in (antialias, antialias.layers):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name} is in __all__ but missing"
