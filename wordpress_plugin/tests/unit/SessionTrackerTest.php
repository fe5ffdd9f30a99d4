<?php
/**
 * The visit cookies: set on the first front-end page, counted, bounded, reset.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

require_once __DIR__ . '/TapTestCase.php';

final class SessionTrackerTest extends TapTestCase {

	/** @return array<string, array{0: string|null, 1: int}> cookie value => duration at an order placed at NOW */
	public function visit_start_cookies(): array {
		$now = self::NOW;
		return array(
			'missing'                 => array( null, 0 ),
			'empty'                   => array( '', 0 ),
			'forged text'             => array( 'yesterday', 0 ),
			'script injection'        => array( '<script>alert(1)</script>', 0 ),
			'number with text'        => array( ( $now - 50 ) . 'abc', 0 ),
			'negative'                => array( '-' . ( $now - 50 ), 0 ),
			'decimal'                 => array( ( $now - 50 ) . '.5', 0 ),
			'exponent'                => array( '1.79e9', 0 ),
			'hex'                     => array( '0x6AFE1F00', 0 ),
			'future'                  => array( (string) ( $now + 3600 ), 0 ),
			'one second ahead'        => array( (string) ( $now + 1 ), 0 ),
			'huge (20 digits)'        => array( '99999999999999999999', 0 ),
			'huge (12 digits, future)' => array( '999999999999', 0 ),
			'ancient'                 => array( '1', 86400 ),
			'ten days old'            => array( (string) ( $now - 10 * 86400 ), 86400 ),
			'exactly one day'         => array( (string) ( $now - 86400 ), 86400 ),
			'zero'                    => array( '0', 86400 ),
			'now'                     => array( (string) $now, 0 ),
			'95 s ago'                => array( (string) ( $now - 95 ), 95 ),
			'95 s ago, padded'        => array( ' ' . ( $now - 95 ) . ' ', 95 ),
		);
	}

	/** @dataProvider visit_start_cookies */
	public function test_duration_is_bounded( ?string $cookie, int $expected ): void {
		$this->assertSame( $expected, TAP_Session_Tracker::duration_from( $cookie, self::NOW ) );

		// Same through an order placed with that cookie.
		$this->new_request( null === $cookie ? array() : array( 'visit_start_time' => $cookie ) );
		$order = tap_test_make_order( array( 'id' => 700 ) );
		do_action( 'woocommerce_store_api_checkout_order_processed', $order );
		wc_get_order( 700 )->update_status( 'processing' );
		$event = $this->log_events()[0];
		$this->assertSame( $expected, $event['duration_session'] );
		$this->assertGreaterThanOrEqual( 0, $event['duration_session'] );
		$this->assertLessThanOrEqual( 86400, $event['duration_session'] );
	}

	public function test_non_string_cookie_values_are_ignored(): void {
		$this->assertSame( 0, TAP_Session_Tracker::duration_from( array( '1' ), self::NOW ) );
		$_COOKIE['visit_start_time'] = array( 'x' => '1' ); // visit_start_time[x]=1 in the Cookie header
		$this->assertSame( 0, $this->plugin->session->snapshot()['duration_session'] );
	}

	/** @return array<string, array{0: string|null, 1: int}> */
	public function page_cookies(): array {
		return array(
			'missing'  => array( null, 1 ),
			'zero'     => array( '0', 1 ),
			'text'     => array( 'many', 1 ),
			'negative' => array( '-4', 1 ),
			'four'     => array( '4', 4 ),
			'huge'     => array( '99999999999', 100000 ),
			'too long' => array( '99999999999999999999', 1 ),
		);
	}

	/** @dataProvider page_cookies */
	public function test_pages_viewed_is_bounded( ?string $cookie, int $expected ): void {
		$this->assertSame( $expected, TAP_Session_Tracker::pages_from( $cookie ) );
	}

	public function test_first_page_view_starts_the_visit_with_safe_cookie_attributes(): void {
		do_action( 'template_redirect' );

		$start = $this->jar->last( 'visit_start_time' );
		$pages = $this->jar->last( 'tap_pages_viewed' );
		$this->assertSame( (string) self::NOW, $start['value'] );
		$this->assertSame( '1', $pages['value'] );
		foreach ( array( $start, $pages ) as $cookie ) {
			$this->assertSame( self::NOW + 86400, $cookie['options']['expires'] );
			$this->assertSame( '/', $cookie['options']['path'] );
			$this->assertTrue( $cookie['options']['httponly'] );
			$this->assertSame( 'Lax', $cookie['options']['samesite'] );
			$this->assertFalse( $cookie['options']['secure'] );
		}
	}

	public function test_cookies_are_secure_on_https(): void {
		$GLOBALS['tap_wp_env']['is_ssl'] = true;
		do_action( 'template_redirect' );
		$this->assertTrue( $this->jar->last( 'visit_start_time' )['options']['secure'] );
	}

	public function test_later_pages_count_and_keep_the_start(): void {
		do_action( 'template_redirect' );
		for ( $i = 0; $i < 6; $i++ ) {
			$this->now += 20;
			$this->new_request();
			do_action( 'template_redirect' );
		}
		$this->assertSame( (string) self::NOW, $_COOKIE['visit_start_time'] );
		$this->assertSame( '7', $_COOKIE['tap_pages_viewed'] );
		$this->assertNull( $this->jar->last( 'visit_start_time' ), 'the start cookie is not re-sent' );
		$this->assertSame( self::NOW + 86400, $this->jar->last( 'tap_pages_viewed' )['options']['expires'], 'the counter expires with the visit' );
		$this->assertSame( array( 'duration_session' => 120, 'pages_viewed' => 7 ), $this->plugin->session->snapshot() );
	}

	/** @return array<string, array{0: string|null}> */
	public function unusable_starts(): array {
		return array(
			'forged'  => array( 'abc' ),
			'future'  => array( (string) ( self::NOW + 999 ) ),
			'ancient' => array( (string) ( self::NOW - 2 * 86400 ) ),
			'huge'    => array( '99999999999999999999' ),
		);
	}

	/** @dataProvider unusable_starts */
	public function test_unusable_start_begins_a_new_visit( string $cookie ): void {
		$this->new_request( array( 'visit_start_time' => $cookie, 'tap_pages_viewed' => '50' ) );
		do_action( 'template_redirect' );
		$this->assertSame( (string) self::NOW, $_COOKIE['visit_start_time'] );
		$this->assertSame( '1', $_COOKIE['tap_pages_viewed'] );
	}

	public function test_page_counter_stays_bounded(): void {
		$this->new_request( array( 'visit_start_time' => (string) ( self::NOW - 10 ), 'tap_pages_viewed' => '100000' ) );
		do_action( 'template_redirect' );
		$this->assertSame( '100000', $_COOKIE['tap_pages_viewed'] );
	}

	/** @return array<string, array{0: callable}> */
	public function non_pages(): array {
		return array(
			'admin'       => array( static function () { $GLOBALS['tap_wp_env']['is_admin'] = true; } ),
			'ajax'        => array( static function () { $GLOBALS['tap_wp_env']['doing_ajax'] = true; } ),
			'cron'        => array( static function () { $GLOBALS['tap_wp_env']['doing_cron'] = true; } ),
			'feed'        => array( static function () { $GLOBALS['tap_wp_env']['is_feed'] = true; } ),
			'robots'      => array( static function () { $GLOBALS['tap_wp_env']['is_robots'] = true; } ),
			'favicon'     => array( static function () { $GLOBALS['tap_wp_env']['is_favicon'] = true; } ),
			'embed'       => array( static function () { $GLOBALS['tap_wp_env']['is_embed'] = true; } ),
			'404'         => array( static function () { $GLOBALS['tap_wp_env']['is_404'] = true; } ),
			'customizer'  => array( static function () { $GLOBALS['tap_wp_env']['is_customize_preview'] = true; } ),
			'wc-ajax'     => array( static function () { $_GET['wc-ajax'] = 'update_order_review'; } ),
			'post'        => array( static function () { $_SERVER['REQUEST_METHOD'] = 'POST'; } ),
			'head'        => array( static function () { $_SERVER['REQUEST_METHOD'] = 'HEAD'; } ),
			'prefetch'    => array( static function () { $_SERVER['HTTP_SEC_PURPOSE'] = 'prefetch'; } ),
			'asset'       => array( static function () { $_SERVER['REQUEST_URI'] = '/wp-content/themes/x/style.css?ver=1'; } ),
			'font'        => array( static function () { $_SERVER['REQUEST_URI'] = '/fonts/a.woff2'; } ),
			'filtered'    => array( static function () { add_filter( 'tap_count_page_view', '__return_false' ); } ),
		);
	}

	/** @dataProvider non_pages */
	public function test_non_page_requests_are_not_counted( callable $make_request ): void {
		$make_request();
		do_action( 'template_redirect' );
		$this->assertSame( array(), $this->jar->sent );
		$this->assertArrayNotHasKey( 'visit_start_time', $_COOKIE );
	}

	public function test_rest_requests_are_not_counted(): void {
		$tracker = $this->plugin->session;
		$this->assertTrue( $tracker->is_countable_page_view() );
		// REST_REQUEST is a constant; checked in a child process so the rest of the suite is unaffected.
		$code = 'require ' . var_export( dirname( __DIR__ ) . '/bootstrap.php', true ) . '; define( "REST_REQUEST", true );'
			. ' $t = new TAP_Session_Tracker( new TAP_Recording_Cookie_Jar() ); echo $t->is_countable_page_view() ? "counted" : "skipped";';
		$this->assertSame( 'skipped', shell_exec( escapeshellarg( PHP_BINARY ) . ' -r ' . escapeshellarg( $code ) ) );
	}

	public function test_login_resets_the_visit(): void {
		$this->new_request( array( 'visit_start_time' => (string) ( self::NOW - 500 ), 'tap_pages_viewed' => '9' ) );
		do_action( 'wp_login', 'lorenzo', null );
		$this->assertArrayNotHasKey( 'visit_start_time', $_COOKIE );
		$this->assertArrayNotHasKey( 'tap_pages_viewed', $_COOKIE );
		$this->assertSame( 1, $this->jar->last( 'visit_start_time' )['options']['expires'], 'expired in the past' );

		$this->now += 3;
		$this->new_request();
		do_action( 'template_redirect' );
		$this->assertSame( (string) $this->now, $_COOKIE['visit_start_time'] );
		$this->assertSame( '1', $_COOKIE['tap_pages_viewed'] );
	}

	public function test_a_purchase_resets_the_visit_for_the_next_one(): void {
		$this->new_request( array( 'visit_start_time' => (string) ( self::NOW - 300 ), 'tap_pages_viewed' => '12' ) );
		$order = tap_test_make_order( array( 'id' => 701 ) );
		do_action( 'woocommerce_checkout_order_processed', 701, array(), $order );
		wc_get_order( 701 )->update_status( 'processing' );

		// The next purchase in the same browser is measured from its own first page.
		$this->now += 60;
		$this->new_request();
		do_action( 'template_redirect' );
		$this->now += 25;
		$this->new_request();
		$order = tap_test_make_order( array( 'id' => 702 ) );
		do_action( 'woocommerce_checkout_order_processed', 702, array(), $order );
		wc_get_order( 702 )->update_status( 'processing' );

		$events = $this->log_events();
		$this->assertSame( array( 300, 25 ), array_column( $events, 'duration_session' ) );
		$this->assertSame( array( 12, 1 ), array_column( $events, 'pages_viewed' ) );
	}
}
