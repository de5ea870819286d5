"""The DICOM file format, without policy: finding files, checking their structure, writing them.

* :mod:`~medveil.dicomio.discover`: what under INPUT is a DICOM file (by its
  first bytes), read without following links planted later;
* :mod:`~medveil.dicomio.integrity`: the structural walk that vouches for an
  input's element lengths, and for an output's pixel bytes;
* :mod:`~medveil.dicomio.encode`: the writer (one pass, pixel values shared,
  never copied);
* :mod:`~medveil.dicomio.vr`: the Value Representation families, defined once.
"""
