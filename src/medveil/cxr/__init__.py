"""Chest-radiograph anonymisation after PriCheXy-Net (Packhäuser et al., MICCAI 2023).

A deep network can tell whether two chest radiographs show the same patient, so a published image can be linked
to the patient's other images even after every header field is cleaned.  This package learns a small, smooth
deformation per image that is meant to defeat such a verification attacker while keeping diagnostic content,
measures it against controls with the paper's linkage protocol, and applies a trained model to CR/DX DICOM images
as the "Clean Recognizable Visual Features" step.

Modules (each with one job):

- ``warp``      the deformation operator (and the original whole-grid-smoothing variant for comparison)
- ``models``    U-Net anonymiser, Siamese attacker, finding classifier, lung segmentation
- ``controls``  the comparison methods: random warp, DP-Pix, Gaussian blur, Privacy-Net-style generator
- ``data``      the image index, labels, patient-disjoint folds, pair sampling, lung masks, phantoms
- ``train``     training loops (utility models, attacker, anonymiser pre-training and adversarial training)
- ``evaluate``  the evaluation protocol, bootstrap-by-patient confidence intervals, table and plot
- ``dicom``     applying a trained anonymiser to a chest CR/DX DICOM dataset

torch is an optional dependency (``pip install medveil[cxr]``); importing this package does not import it.
"""
