"""What edgeship deploys: the inline Pulumi program and the Lambda code."""
