"""Human face input: Live Link Face UDP, recorded takes, neutral calibration."""
