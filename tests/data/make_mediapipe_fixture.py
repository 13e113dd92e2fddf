"""Make tests/data/mediapipe_astronaut_face_mesh.json: MediaPipe's own face
mesh on scikit-image's astronaut, the independent truth for
tests/test_face_pipeline.py. The tests never import this script.

MediaPipe pins old numpy/protobuf, so it runs in a throwaway virtual
environment outside the repository, never in the project's Python:

    python -m venv /tmp/mpvenv
    /tmp/mpvenv/bin/pip install mediapipe==0.10.21 opencv-python-headless scikit-image
    /tmp/mpvenv/bin/python tests/data/make_mediapipe_fixture.py

It runs the legacy ``mediapipe.solutions.face_mesh`` graph
(``static_image_mode=True``: face detection with the short-range model on
every image, then the 468-point mesh on the rotated crop;
``refine_landmarks=False``: the plain face_landmark.tflite model) and
``solutions.face_detection`` (``model_selection=0``, short range) on two
images, and writes the landmarks in pixels (x, y; z in the same units as
MediaPipe scales it: normalised z times the image width) with the face
detections (box and the 6 keypoints in pixels, score):

* ``astronaut``: ``skimage.data.astronaut()``, 512x512, one face;
* ``astronaut_pair``: ``astronaut()[:300, 80:380]`` side by side with its
  mirror image, 300x600: two faces, and a non-square image (letterboxing).
"""

import json
import pathlib

import mediapipe as mp
import numpy as np
import skimage.data


def images():
    a = skimage.data.astronaut()
    crop = a[:300, 80:380]
    return {"astronaut": a,
            "astronaut_pair": np.ascontiguousarray(np.concatenate([crop, crop[:, ::-1]], axis=1))}


def main():
    out = {"mediapipe": mp.__version__, "images": {}}
    for name, img in images().items():
        h, w = img.shape[:2]
        with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=4,
                                             refine_landmarks=False,
                                             min_detection_confidence=0.5) as fm:
            res = fm.process(img)
        faces = []
        for lm in res.multi_face_landmarks or []:
            faces.append([[round(p.x * w, 4), round(p.y * h, 4), round(p.z * w, 4)]
                          for p in lm.landmark])
        with mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                       min_detection_confidence=0.5) as fd:
            det = fd.process(img)
        dets = []
        for d in det.detections or []:
            b = d.location_data.relative_bounding_box
            dets.append({
                "score": round(float(d.score[0]), 5),
                "box_xywh": [round(b.xmin * w, 3), round(b.ymin * h, 3), round(b.width * w, 3),
                             round(b.height * h, 3)],
                "keypoints": [[round(k.x * w, 3), round(k.y * h, 3)]
                              for k in d.location_data.relative_keypoints]})
        out["images"][name] = {"height": h, "width": w, "landmarks": faces, "detections": dets}
        print(name, f"{w}x{h}:", len(faces), "meshes,", len(dets), "detections")
    path = pathlib.Path(__file__).with_name("mediapipe_astronaut_face_mesh.json")
    path.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print("wrote", path, path.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
