"""Chest-radiograph anonymisation after PriCheXy-Net (Packhäuser et al., MICCAI 2023).

A deep network can tell whether two chest radiographs show the same patient, so a published image can be linked
to the patient's other images even after every header field is cleaned.  This package learns a small, smooth
deformation per image that is meant to defeat such a verification attacker while keeping diagnostic content,
measures it against controls with the paper's linkage protocol, and applies a trained model to CR/DX DICOM images
as the "Clean Recognizable Visual Features" step.

Modules (each with one job):

- ``warp``        the deformation operator (and the original whole-grid-smoothing variant for comparison)
- ``models``      U-Net anonymiser, Siamese attacker, finding classifier, lung segmentation
- ``controls``    the comparison methods: random warp, phase-randomised matched warp, DP-Pix, Gaussian blur
- ``data``        the image index, labels, patient-disjoint folds, pair sampling, lung masks, phantoms
- ``train``       training loops (utility models, attacker, anonymiser pre-training and adversarial training)
- ``evaluate``    the first evaluation protocol, bootstrap-by-patient confidence intervals, table and plot
- ``registration``  the registration attacker (affine then deformable, similarity over the lung fields)
- ``attackers``   the learned metric attacker trained on published-vs-real pairs
- ``attack``      every defence against the two stronger attackers, matched controls, two-level bootstrap
- ``intensity``   the one stored-values-to-display normalisation (VOI LUT, window, bit depth)
- ``applicable``  which DICOM images the anonymiser may touch (frontal chest CR/DX), from the header
- ``lungs``       the shipped lung-field model and the image check where the header cannot tell
- ``apply``       a trained anonymiser on one image of any size (field at training size, stored values warped)
- ``dicom``       the ``--clean-visual-features cxr`` step: decide, warp every frame, record, or quarantine

torch is an optional dependency (``pip install medveil[cxr]``); importing this package does not import it.
"""
