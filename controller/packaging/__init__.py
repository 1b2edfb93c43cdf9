"""Distributor packages built from files in the desired-state repository: deterministic zips,
manifest.json and content-addressed S3 keys."""

from controller.packaging.build import Artifact, PackageBuild, build_package
from controller.packaging.zipper import deterministic_zip

__all__ = ["Artifact", "PackageBuild", "build_package", "deterministic_zip"]
