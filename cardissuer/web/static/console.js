/* Photo input for the console: webcam capture where the browser allows it, and a size
   check before upload. Without this script the file input still works on its own. */
"use strict";

(function () {
  function setup(widget) {
    var maxBytes = parseInt(widget.getAttribute("data-max-bytes"), 10) || 1048576;
    var fileInput = widget.querySelector("[data-photo-file]");
    var field = widget.querySelector("[data-camera-field]");
    var video = widget.querySelector("[data-camera-video]");
    var canvas = widget.querySelector("[data-camera-canvas]");
    var start = widget.querySelector("[data-camera-start]");
    var take = widget.querySelector("[data-camera-take]");
    var stop = widget.querySelector("[data-camera-stop]");
    var status = widget.querySelector("[data-photo-status]");
    var preview = widget.querySelector("[data-photo-preview]");
    var stream = null;

    function say(text, isError) {
      status.textContent = text;
      status.classList.toggle("error-text", Boolean(isError));
    }

    function show(src) {
      preview.src = src;
      preview.hidden = false;
    }

    function stopCamera() {
      if (stream) {
        stream.getTracks().forEach(function (track) { track.stop(); });
        stream = null;
      }
      video.hidden = true;
      take.hidden = true;
      stop.hidden = true;
      start.hidden = false;
    }

    fileInput.addEventListener("change", function () {
      var file = fileInput.files && fileInput.files[0];
      if (!file) { return; }
      if (file.size > maxBytes) {
        fileInput.value = "";
        say(widget.getAttribute("data-too-large"), true);
        return;
      }
      field.value = "";
      say("", false);
      show(URL.createObjectURL(file));
    });

    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      start.hidden = true;
      var note = document.createElement("p");
      note.className = "hint";
      note.textContent = widget.getAttribute("data-unavailable");
      start.parentNode.appendChild(note);
      return;
    }

    start.addEventListener("click", function () {
      navigator.mediaDevices
        .getUserMedia({ video: { width: { ideal: 960 }, height: { ideal: 720 } }, audio: false })
        .then(function (media) {
          stream = media;
          video.srcObject = media;
          video.hidden = false;
          start.hidden = true;
          take.hidden = false;
          stop.hidden = false;
          return video.play();
        })
        .then(function () { take.focus(); })
        .catch(function () {
          stopCamera();
          say(widget.getAttribute("data-unavailable"), true);
        });
    });

    take.addEventListener("click", function () {
      var width = video.videoWidth;
      var height = video.videoHeight;
      if (!width || !height) { return; }
      // Crop the middle to the portrait's 4:5 shape; 480x600 is plenty for a 96x120 portrait.
      var cropWidth = Math.min(width, Math.round(height * 0.8));
      var cropHeight = Math.round(cropWidth * 1.25);
      canvas.width = 480;
      canvas.height = 600;
      canvas.getContext("2d").drawImage(
        video, (width - cropWidth) / 2, (height - cropHeight) / 2, cropWidth, cropHeight,
        0, 0, canvas.width, canvas.height);
      var quality = 0.9;
      var data = canvas.toDataURL("image/jpeg", quality);
      while (data.length * 0.75 > maxBytes && quality > 0.3) {
        quality -= 0.2;
        data = canvas.toDataURL("image/jpeg", quality);
      }
      field.value = data;
      fileInput.value = "";
      show(data);
      say(widget.getAttribute("data-taken"), false);
      stopCamera();
      start.focus();
    });

    stop.addEventListener("click", stopCamera);
  }

  document.querySelectorAll("[data-camera]").forEach(setup);
})();
