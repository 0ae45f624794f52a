// Northgate Motors demo shop: favorites and test-drive buttons, reported to Lookout with
// lookout('track', ...). The shop is the site owner's page: it only talks to Lookout through
// the queue stub / page API.
(function () {
  'use strict';
  var KEY = 'northgate-favorites';

  function load() {
    try {
      return JSON.parse(localStorage.getItem(KEY) || '[]');
    } catch (e) {
      return [];
    }
  }
  function save(list) {
    try {
      localStorage.setItem(KEY, JSON.stringify(list));
    } catch (e) {}
  }

  function paint(root) {
    var favs = load();
    (root || document).querySelectorAll('[data-favorite]').forEach(function (button) {
      var on = favs.indexOf(button.getAttribute('data-sku')) >= 0;
      button.setAttribute('aria-pressed', on ? 'true' : 'false');
      var label = button.querySelector('[data-fav-label]');
      if (label) label.textContent = on ? 'Saved to favorites' : 'Add to favorites';
    });
    document.querySelectorAll('[data-fav-count]').forEach(function (el) {
      el.textContent = String(favs.length);
    });
  }

  document.addEventListener('click', function (event) {
    var fav = event.target.closest && event.target.closest('[data-favorite]');
    if (fav) {
      var sku = fav.getAttribute('data-sku');
      var favs = load();
      var i = favs.indexOf(sku);
      if (i >= 0) {
        favs.splice(i, 1);
        lookout('track', 'remove_from_favorites', { sku: sku });
      } else {
        favs.push(sku);
        lookout('track', 'add_to_favorites', { sku: sku });
      }
      save(favs);
      paint();
      return;
    }
    var drive = event.target.closest && event.target.closest('[data-test-drive]');
    if (drive) {
      lookout('track', 'test_drive_request', { sku: drive.getAttribute('data-sku') });
      drive.disabled = true;
      var notice = document.querySelector('[data-test-drive-notice]');
      if (notice) notice.classList.add('show');
    }
  });

  // Pages that render later (the car finder) call this again.
  window.northgate = { paintFavorites: paint };
  paint();
})();
