"""Catching bulk exports of customer data on disk and removable drives, without copying the data.

`scan.scan_paths` / `scan.scan_file` judge files; `sensor.ExportSensor` watches folders and
removable drives for new ones; `volumes` says which drives are removable. See README.md here.
"""
