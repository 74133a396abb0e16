"""The build job, its daily schedule and the sensors."""
