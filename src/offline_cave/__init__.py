"""offline_cave: a synthetic, calibrated stand-in for the public MICrONS and V1DD CAVE datastacks.

Not real data. See ``offline_cave/README.md`` for what is synthetic and what it is calibrated to.
"""

from offline_cave.contract.layout import GENERATOR_VERSION

__all__ = ["GENERATOR_VERSION"]
