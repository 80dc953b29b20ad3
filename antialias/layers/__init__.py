"""Anti-aliased sampling layers and their functional twins."""

from antialias.layers.adaptive import AdaptiveBlurPool1d as AdaptiveBlurPool1d
from antialias.layers.adaptive import AdaptiveBlurPool2d as AdaptiveBlurPool2d
from antialias.layers.adaptive import AdaptiveBlurPool3d as AdaptiveBlurPool3d
from antialias.layers.adaptive import adaptive_blur_pool1d as adaptive_blur_pool1d
from antialias.layers.adaptive import adaptive_blur_pool2d as adaptive_blur_pool2d
from antialias.layers.adaptive import adaptive_blur_pool3d as adaptive_blur_pool3d
from antialias.layers.adaptive import load_host_weights as load_host_weights
from antialias.layers.alias_free import AliasFreeActivation as AliasFreeActivation
from antialias.layers.alias_free import alias_free_activation as alias_free_activation
from antialias.layers.alias_free import replace_activations as replace_activations
from antialias.layers.blurpool import BlurConv1d as BlurConv1d
from antialias.layers.blurpool import BlurConv2d as BlurConv2d
from antialias.layers.blurpool import BlurConv3d as BlurConv3d
from antialias.layers.blurpool import BlurPool1d as BlurPool1d
from antialias.layers.blurpool import BlurPool2d as BlurPool2d
from antialias.layers.blurpool import BlurPool3d as BlurPool3d
from antialias.layers.blurpool import MaxBlurPool1d as MaxBlurPool1d
from antialias.layers.blurpool import MaxBlurPool2d as MaxBlurPool2d
from antialias.layers.blurpool import MaxBlurPool3d as MaxBlurPool3d
from antialias.layers.factory import create_downsample as create_downsample
from antialias.layers.factory import list_downsample_methods as list_downsample_methods
from antialias.layers.factory import register_downsample as register_downsample
from antialias.layers.fourier import FourierPool1d as FourierPool1d
from antialias.layers.fourier import FourierPool2d as FourierPool2d
from antialias.layers.fourier import FourierPool3d as FourierPool3d
from antialias.layers.fourier import fourier_pool1d as fourier_pool1d
from antialias.layers.fourier import fourier_pool2d as fourier_pool2d
from antialias.layers.fourier import fourier_pool3d as fourier_pool3d
from antialias.layers.functional import PAD_MODES as PAD_MODES
from antialias.layers.functional import blur_pool1d as blur_pool1d
from antialias.layers.functional import blur_pool2d as blur_pool2d
from antialias.layers.functional import blur_pool3d as blur_pool3d
from antialias.layers.functional import blur_upsample1d as blur_upsample1d
from antialias.layers.functional import blur_upsample2d as blur_upsample2d
from antialias.layers.functional import blur_upsample3d as blur_upsample3d
from antialias.layers.functional import get_backend as get_backend
from antialias.layers.functional import max_blur_pool1d as max_blur_pool1d
from antialias.layers.functional import max_blur_pool2d as max_blur_pool2d
from antialias.layers.functional import max_blur_pool3d as max_blur_pool3d
from antialias.layers.functional import set_backend as set_backend
from antialias.layers.polyphase import ApsDown1d as ApsDown1d
from antialias.layers.polyphase import ApsDown2d as ApsDown2d
from antialias.layers.polyphase import ApsDown3d as ApsDown3d
from antialias.layers.polyphase import LpsDown1d as LpsDown1d
from antialias.layers.polyphase import LpsDown2d as LpsDown2d
from antialias.layers.polyphase import LpsDown3d as LpsDown3d
from antialias.layers.polyphase import LpsScorer as LpsScorer
from antialias.layers.polyphase import PolyphaseUp1d as PolyphaseUp1d
from antialias.layers.polyphase import PolyphaseUp2d as PolyphaseUp2d
from antialias.layers.polyphase import PolyphaseUp3d as PolyphaseUp3d
from antialias.layers.polyphase import aps_down1d as aps_down1d
from antialias.layers.polyphase import aps_down2d as aps_down2d
from antialias.layers.polyphase import aps_down3d as aps_down3d
from antialias.layers.polyphase import link_residual_phases as link_residual_phases
from antialias.layers.polyphase import lps_down1d as lps_down1d
from antialias.layers.polyphase import lps_down2d as lps_down2d
from antialias.layers.polyphase import lps_down3d as lps_down3d
from antialias.layers.polyphase import polyphase_up1d as polyphase_up1d
from antialias.layers.polyphase import polyphase_up2d as polyphase_up2d
from antialias.layers.polyphase import polyphase_up3d as polyphase_up3d
from antialias.layers.polyphase import set_lps_temperature as set_lps_temperature
from antialias.layers.upsample import BlurUpsample1d as BlurUpsample1d
from antialias.layers.upsample import BlurUpsample2d as BlurUpsample2d
from antialias.layers.upsample import BlurUpsample3d as BlurUpsample3d
from antialias.layers.wavelet import WaveletPool1d as WaveletPool1d
from antialias.layers.wavelet import WaveletPool2d as WaveletPool2d
from antialias.layers.wavelet import WaveletPool3d as WaveletPool3d
from antialias.layers.wavelet import wavelet_pool1d as wavelet_pool1d
from antialias.layers.wavelet import wavelet_pool2d as wavelet_pool2d
from antialias.layers.wavelet import wavelet_pool3d as wavelet_pool3d

__all__ = [
    "PAD_MODES",
    "get_backend",
    "set_backend",
    "BlurConv1d",
    "BlurConv2d",
    "BlurConv3d",
    "BlurPool1d",
    "BlurPool2d",
    "BlurPool3d",
    "BlurUpsample1d",
    "BlurUpsample2d",
    "BlurUpsample3d",
    "MaxBlurPool1d",
    "MaxBlurPool2d",
    "MaxBlurPool3d",
    "create_downsample",
    "list_downsample_methods",
    "register_downsample",
    "blur_pool1d",
    "blur_pool2d",
    "blur_pool3d",
    "blur_upsample1d",
    "blur_upsample2d",
    "blur_upsample3d",
    "max_blur_pool1d",
    "max_blur_pool2d",
    "max_blur_pool3d",
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
    "link_residual_phases",
    "lps_down1d",
    "lps_down2d",
    "lps_down3d",
    "polyphase_up1d",
    "polyphase_up2d",
    "polyphase_up3d",
    "set_lps_temperature",
    "AdaptiveBlurPool1d",
    "AdaptiveBlurPool2d",
    "AdaptiveBlurPool3d",
    "adaptive_blur_pool1d",
    "adaptive_blur_pool2d",
    "adaptive_blur_pool3d",
    "load_host_weights",
    "AliasFreeActivation",
    "alias_free_activation",
    "replace_activations",
    "FourierPool1d",
    "FourierPool2d",
    "FourierPool3d",
    "fourier_pool1d",
    "fourier_pool2d",
    "fourier_pool3d",
    "WaveletPool1d",
    "WaveletPool2d",
    "WaveletPool3d",
    "wavelet_pool1d",
    "wavelet_pool2d",
    "wavelet_pool3d",
]

_MOVED = {"lps_temperature": "antialias.train.lps_temperature"}


def __getattr__(name: str) -> object:
    # Names that left this module in 0.2 fail with their new home (a training schedule is not a layer).
    if name in _MOVED:
        raise AttributeError(f"antialias.layers.{name} moved to {_MOVED[name]}")
    raise AttributeError(f"module 'antialias.layers' has no attribute {name!r}")
