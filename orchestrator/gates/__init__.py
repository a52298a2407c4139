"""Load, metrics and the judgement on them: is green as good as blue?"""
