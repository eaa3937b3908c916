"""Scores image arrays with the judge: its FID, score, class shares, precision and recall."""
