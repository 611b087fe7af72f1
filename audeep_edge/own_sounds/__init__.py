"""``audeep-edge train``: a folder of one's own labelled clips -> a verified bundle that ``listen`` runs.

Clips go through the device path (``listen``'s front end, windows and LiteRT encoder); a linear head is fitted on
their embeddings, cross-validated, and grafted onto the encoder's ``.tflite`` (``clips``, ``head``, ``report``,
``run``). With unlabelled audio an autoencoder is trained first with the base bundle's settings and quantized
(``encoder``, needs the ``[train]`` extra).
"""

#: autoencoder epochs of ``--unlabelled``: a few minutes on a 2-core CPU for a few dozen clips (docs/own-sounds.md)
DEFAULT_EPOCHS = 20
