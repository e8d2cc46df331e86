"""Loading saved models with errors that say what was wrong and what was expected."""

import zipfile
from pathlib import Path

import keras  # importing mimokd registered every custom object a checkpoint names (mimokd.registration)

ROLES = {
    "autoencoder": "a CSI autoencoder (CSI [batch, 2, H, W] -> CSI), e.g. best.keras of `mimokd train`",
    "encoder": "a UE encoder (CSI [batch, 2, H, W] -> codeword [batch, D]), "
    "e.g. best.keras of `mimokd ip-kd ue-train`",
    "decoder": "a BS decoder (codeword [batch, D] -> CSI [batch, 2, H, W]), "
    "e.g. best.keras of `mimokd ip-kd bs-finetune`",
}


def _role_of(model):
    inputs, outputs = tuple(model.input_shape), tuple(model.output_shape)
    if len(inputs) == 4 and len(outputs) == 4:
        return "autoencoder"
    if len(inputs) == 4 and len(outputs) == 2:
        return "encoder"
    if len(inputs) == 2 and len(outputs) == 4:
        return "decoder"
    return None


def load_checkpoint(path, role="autoencoder"):
    """Load a ``.keras`` model and check that it plays ``role`` (one of ``ROLES``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a Keras archive, or the model has the wrong inputs/outputs.
    """
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}. Expected one of {sorted(ROLES)}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No checkpoint at {path} (expected {ROLES[role]})")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a Keras .keras archive (expected {ROLES[role]})")
    model = keras.saving.load_model(path)
    found = _role_of(model)
    if found != role:
        raise ValueError(
            f"{path} holds a model {model.input_shape} -> {model.output_shape} ({found or 'unknown role'}); "
            f"expected {ROLES[role]}"
        )
    return model
