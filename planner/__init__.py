"""Cost of the pipeline: pricing what the local cloud's meter counted, and planning a fleet's monthly bill.

``python -m planner plan --stack prod --devices 1000 --interval 60 --readings 10`` prints the
monthly cost by line item, the cost per million readings and capacity checks against the stack's
own config. ``python -m planner readme --write`` regenerates the README's cost section from it.
"""
