"""The bucket's own configuration: lifecycle, policies and administration through boto3."""
