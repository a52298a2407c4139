"""The local environment: an AWS API emulator (moto) and a local edge that runs the code.

It provisions an emulated copy of the serving stack with boto3 for release rehearsal;
AWS environments are provisioned by the Pulumi program in programs/serving.py.
"""
