"""Shared pieces of the benchmarks: MNIST arrays and the Keras example conv-net."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from leafprep.idx import read_idx

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
MNIST = DATA / "mnist"
CACHE = ROOT / "bench" / ".cache"


def mnist(split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """MNIST images (N, 28, 28) uint8 and labels (N,) of a split, from ../shared/data/mnist."""
    prefix = "train" if split == "train" else "t10k"
    return read_idx(MNIST / f"{prefix}-images-idx3-ubyte.gz"), read_idx(MNIST / f"{prefix}-labels-idx1-ubyte.gz")


def keras_example_convnet(seed: int = 0):
    """The Keras MNIST example: conv32-pool-conv64-pool-flatten-dropout-dense."""
    import keras

    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def trained_convnet(epochs: int = 12, seed: int = 0):
    """The Keras example conv-net trained on clean MNIST (cached in bench/.cache)."""
    import keras

    path = CACHE / f"keras_example_convnet_e{epochs}_s{seed}.keras"
    if path.exists():
        return keras.saving.load_model(path, safe_mode=True)
    x, y = mnist("train")
    model = keras_example_convnet(seed)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(x[..., None].astype("float32") / 255.0, y, batch_size=128, epochs=epochs, validation_split=0.1, verbose=2)
    print(f"trained in {time.perf_counter() - start:.0f} s")
    CACHE.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def predict(model, images: np.ndarray) -> np.ndarray:
    """Class predictions for (N, 28, 28) float images in [0, 1]."""
    return np.argmax(model.predict(images[..., None].astype("float32"), batch_size=512, verbose=0), axis=1)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model = trained_convnet()
    xt, yt = mnist("test")
    print("clean MNIST test accuracy:", float((predict(model, xt / 255.0) == yt).mean()))
