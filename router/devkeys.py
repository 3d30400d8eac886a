"""The local development key pair under `.router/`, trusted only with `router serve --dev`."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from router.core.signature import generate_key_pair, load_private_key, load_public_key

DEV_DIR = Path(".router")


def write_key_pair(directory: Path) -> tuple[Path, Path]:
    """Write a fresh RSA-2048 pair as `private.pem` (mode 600) and `public.pem`."""
    directory.mkdir(parents=True, exist_ok=True)
    private, public = generate_key_pair()
    private_path, public_path = directory / "private.pem", directory / "public.pem"
    private_path.touch(mode=0o600)
    private_path.write_bytes(private)
    public_path.write_bytes(public)
    return private_path, public_path


def ensure_dev_keys(directory: Path = DEV_DIR) -> tuple[Path, Path]:
    """The dev pair's paths, created on first use."""
    private_path, public_path = directory / "private.pem", directory / "public.pem"
    if not (private_path.exists() and public_path.exists()):
        return write_key_pair(directory)
    return private_path, public_path


def dev_public_key(directory: Path = DEV_DIR) -> rsa.RSAPublicKey:
    """The dev public key, creating the pair if needed."""
    _, public_path = ensure_dev_keys(directory)
    return load_public_key(public_path.read_text(encoding="utf-8"))


def dev_private_key(directory: Path = DEV_DIR) -> rsa.RSAPrivateKey:
    """The dev private key, creating the pair if needed."""
    private_path, _ = ensure_dev_keys(directory)
    return load_private_key(private_path.read_bytes())
