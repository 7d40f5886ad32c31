"""The prompt of processing_omni_regressor.py with hostile transcripts: special-token strings (`<|VIDEO|>`,
`<|im_start|>`...) are removed before the prompt is built, so the prompt's media tokens never change (seen through
`omni-regressor inspect-inputs`)."""

import json

import hostile_media as hm
from conftest import cli


def test_special_tokens_in_a_transcript_leave_the_media_tokens_of_the_prompt_alone(regressor, clip_folder):
    def inspected(transcript):
        status, out, err = cli("inspect-inputs", "--model", regressor, clip_folder / "a_good.mp4",
                               "--transcript", transcript)
        assert status == 0, err
        return json.loads(out)

    clean = inspected("it was great indeed")
    for transcript in (hm.TRANSCRIPT_WITH_VIDEO_TOKEN, hm.TRANSCRIPT_WITH_TURN_INJECTION, hm.TRANSCRIPT_WITH_IMAGE_TOKENS):
        report = inspected(transcript)
        assert (report["audio_tokens"], report["video_tokens"]) == (clean["audio_tokens"], clean["video_tokens"])
        assert report["modalities"] == ["text", "audio", "video"]
    assert inspected(hm.TRANSCRIPT_WITH_VIDEO_TOKEN)["total_tokens"] == clean["total_tokens"]
