"""DICOMweb: STOW-RS, QIDO-RS and WADO-RS under /dicom-web/."""
