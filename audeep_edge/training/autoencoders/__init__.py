"""auDeep's recurrent autoencoders on Keras 3 (imports keras and numpy only; any Keras backend).

>>> config = TimeAutoencoderConfig(num_layers=2, num_units=256, bidirectional_decoder=True)
>>> model = build_autoencoder(config, (124, 128))        # model.fit(x) trains it (RMSE on reversed x)
>>> encoder = encoder_model(model)                       # (B, 124, 128) -> {"embedding": (B, 1024)}
"""

from audeep_edge.training.autoencoders.config import (MODEL_CONFIGS, AutoencoderConfig, FrequencyAutoencoderConfig,
                                                      FrequencyTimeAutoencoderConfig, RNNArchitecture,
                                                      TimeAutoencoderConfig, config_from_dict)
from audeep_edge.training.autoencoders.models import Autoencoder, build_autoencoder, encoder_model

__all__ = [
    "MODEL_CONFIGS", "AutoencoderConfig", "FrequencyAutoencoderConfig", "FrequencyTimeAutoencoderConfig",
    "RNNArchitecture", "TimeAutoencoderConfig", "config_from_dict", "Autoencoder", "build_autoencoder",
    "encoder_model",
]
