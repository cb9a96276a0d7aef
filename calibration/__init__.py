"""INT8 calibration: calibration sets, QDQ quantisation, agreement reports."""
