"""newest_unseen_model (runtime/model_loader.py): which model directory to load next."""


def test_the_newest_unseen_model_directory_is_chosen(tmp_path):
    import os
    import time
    from selfimprove_ros.runtime.model_loader import newest_unseen_model
    for name in ('v1', 'v2', '.v3-partial', 'not_a_model'):
        os.makedirs(tmp_path / name)
        if name != 'not_a_model':
            (tmp_path / name / 'manifest.json').write_text('{}')
        time.sleep(0.01)
    assert newest_unseen_model(str(tmp_path), set()) == str(tmp_path / 'v2')
    assert newest_unseen_model(str(tmp_path), {str(tmp_path / 'v2')}) == str(tmp_path / 'v1')
    assert newest_unseen_model(str(tmp_path / 'missing'), set()) == ''
