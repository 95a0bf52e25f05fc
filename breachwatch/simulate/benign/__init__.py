"""The retailer's everyday traffic: what a detector must not flag."""
