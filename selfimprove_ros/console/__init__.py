"""The operator console's pure logic: fleet model, key controls and text screens, free of ROS."""
