"""Camera frames: sensor_msgs/Image -> RGB array, and the one resize every consumer shares."""

import numpy as np

from selfimprove_ros.camera.sources import resize

# The encodings a colour camera of the contract may publish; anything else is a wrong stream.
RGB_ENCODINGS = ('rgb8', 'bgr8')


def resize_rgb(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize an RGB frame [H, W, 3] to height x width [px] with cv2.INTER_AREA.

    The camera node resizes with the same function, and the runtime must too, so a model sees
    identically filtered pixels in training and on the robot.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an RGB image [H, W, 3], got shape {image.shape}')
    if height < 1 or width < 1:
        raise ValueError(f'resize target must be >= 1 px, got {height}x{width}')
    return np.ascontiguousarray(resize(image, width, height))


def image_to_rgb(msg) -> np.ndarray:
    """Return the pixels of a deserialized sensor_msgs/Image as a uint8 RGB array [H, W, 3].

    Raises ValueError naming the problem for encodings other than rgb8/bgr8 and for data that
    does not match height, width and step.
    """
    if msg.encoding not in RGB_ENCODINGS:
        raise ValueError(f'image encoding {msg.encoding!r} is not one of {list(RGB_ENCODINGS)}')
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height < 1 or width < 1 or step < width * 3:
        raise ValueError(f'image {width}x{height} with step {step} is malformed (step must be '
                         f'>= width x 3 = {width * 3})')
    data = np.asarray(msg.data, dtype=np.uint8)
    if data.size < step * height:
        raise ValueError(f'image data holds {data.size} bytes, step x height needs '
                         f'{step * height}')
    rgb = data[:step * height].reshape(height, step)[:, :width * 3].reshape(height, width, 3)
    return rgb[..., ::-1] if msg.encoding == 'bgr8' else rgb
