"""Pure ``nn.Module`` super-resolution architectures (no Lightning, Hydra or losses in here)."""

from src.archs.carn import CARN, CARNM
from src.archs.dcgan import DCGANGenerator
from src.archs.discriminators import SRGANDiscriminator, UNetDiscriminatorSN, VGGStyleDiscriminator
from src.archs.drrn import DRRN
from src.archs.edsr import EDSR
from src.archs.espcn import ESPCN
from src.archs.fsrcnn import FSRCNN
from src.archs.imdn import IMDN
from src.archs.lapsrn import LapSRN, MSLapSRN
from src.archs.rcan import RCAN
from src.archs.rdn import RDN
from src.archs.rrdbnet import RRDBNet
from src.archs.srcnn import SRCNN
from src.archs.srresnet import MSRResNet, SRResNet
from src.archs.srvgg import SRVGGNetCompact
from src.archs.stylegan2 import StyleGAN2Generator
from src.archs.vdsr import VDSR
from src.archs.vgg import VGGFeatureExtractor
from src.archs.wdsr import WDSRA, WDSRB

__all__ = [
    "CARN",
    "CARNM",
    "DCGANGenerator",
    "DRRN",
    "IMDN",
    "LapSRN",
    "MSLapSRN",
    "WDSRA",
    "WDSRB",
    "EDSR",
    "ESPCN",
    "FSRCNN",
    "RCAN",
    "RDN",
    "SRCNN",
    "VDSR",
    "MSRResNet",
    "RRDBNet",
    "SRResNet",
    "SRGANDiscriminator",
    "SRVGGNetCompact",
    "StyleGAN2Generator",
    "UNetDiscriminatorSN",
    "VGGFeatureExtractor",
    "VGGStyleDiscriminator",
]
