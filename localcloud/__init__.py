"""The local cloud: the unchanged Pulumi program provisioned into moto, plus a data plane.

Nothing here is imported by the program or the handlers; see docs/architecture.md.
Import submodules directly (``from localcloud.cloud import LocalCloud``) so that
``python -m localcloud.emulator`` stays a light import.
"""
