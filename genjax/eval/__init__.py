"""Scores image arrays with the judge: classifier-FID, score, coverage, precision and recall."""
